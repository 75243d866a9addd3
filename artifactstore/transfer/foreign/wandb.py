"""Importing W&B offline runs (``wandb/offline-run-*``, written with ``WANDB_MODE=offline``).

Vocabulary (W&B's): an offline run directory holds ``run-<id>.wandb``, the log of
the records ``wandb sync`` would upload (:mod:`.wandblog`): the run (id, project, name,
job type, tags, config, start time), config updates, history rows (``_step``,
``_timestamp`` and the values), summary updates, the exit code, and each logged
**artifact** with its manifest: every file's path, size, MD5 (base64, W&B's digest) and
the local copy W&B staged for upload (``local_path``).

Each run becomes a run of its job type (default ``wandb-run``) with its name, tags and
config, its history rows at their steps and W&B's timestamps, its summary (the keys W&B
users set; ``_``-prefixed bookkeeping left out), ``failed`` for a non-zero exit code (or
no exit record: the run never finished). W&B's run id, project, start time and host are
kept under ``_source``. Each logged artifact becomes a version made by the run, its
files read from W&B's staged copies and checked against their MD5s (kept in the
metadata with W&B's manifest digest), its aliases set (``latest`` is ours anyway). An
artifact the run *used* is known to the log by its server id only: the report names it.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from artifactstore.core.errors import InvalidInputError, NotFoundError
from artifactstore.model.names import validate_alias
from artifactstore.objects.store import Progress
from artifactstore.repository.aliases import set_alias
from artifactstore.repository.artifact import Artifact
from artifactstore.repository.project import Project
from artifactstore.runs.run import Run
from artifactstore.transfer.foreign.checked import (
    FAILED,
    SOURCE_KEY,
    ForeignFile,
    ForeignReport,
    check,
    imported_runs,
    staged,
)
from artifactstore.transfer.foreign.wandblog import read_records

__all__ = ["JOB_TYPE", "import_wandb"]

JOB_TYPE = "wandb-run"
TOOL = "wandb"
_BOOKKEEPING = ("_step", "_timestamp", "_runtime", "_wandb")


def import_wandb(project: Project, path: str | os.PathLike[str], *,
                 progress: Progress | None = None) -> ForeignReport:
    """Import the offline runs at ``path`` (one ``offline-run-*`` directory, its
    ``.wandb`` file, or the ``wandb`` folder holding them) into ``project``."""
    root = Path(path)
    logs = _logs(root)
    if not logs:
        raise NotFoundError(f"{root}: no W&B run log here (run-*.wandb; give an "
                            "offline-run-* directory or the wandb folder)")
    report = ForeignReport("wandb", str(root))
    runs = [_read(log) for log in logs]
    for run in runs:  # every file checked before anything is written
        for artifact in run["artifacts"]:
            for file in artifact["files"]:
                check(file, "W&B")
    done = imported_runs(project, TOOL)
    for run in runs:
        _import(project, run, done, report, progress)
    return report


def _logs(root: Path) -> list[Path]:
    if root.is_file() and root.suffix == ".wandb":
        return [root]
    if not root.is_dir():
        return []
    found = sorted(root.glob("run-*.wandb"))
    if found:
        return found
    return sorted(p for d in sorted(root.glob("*run-*")) if d.is_dir()
                  for p in d.glob("run-*.wandb"))


def _value(item: Any) -> tuple[str, Any]:
    key = item.key or ".".join(item.nested_key)
    try:
        return key, json.loads(item.value_json)
    except ValueError:
        return key, item.value_json


def _read(log: Path) -> dict[str, Any]:
    """The facts of one run log."""
    facts: dict[str, Any] = {"log": log, "config": {}, "rows": [], "summary": {},
                             "artifacts": [], "used": [], "exit": None, "run": None}
    for record in read_records(log):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            facts["run"] = record.run
            facts["config"].update(dict(_value(i) for i in record.run.config.update))
        elif kind == "config":
            facts["config"].update(dict(_value(i) for i in record.config.update))
            for item in record.config.remove:
                facts["config"].pop(item.key or ".".join(item.nested_key), None)
        elif kind == "history":
            facts["rows"].append(dict(_value(i) for i in record.history.item))
        elif kind == "summary":
            facts["summary"].update(dict(_value(i) for i in record.summary.update))
            for item in record.summary.remove:
                facts["summary"].pop(item.key or ".".join(item.nested_key), None)
        elif kind == "artifact":
            facts["artifacts"].append(_artifact(log, record.artifact))
        elif kind == "use_artifact":
            facts["used"].append(record.use_artifact.name or record.use_artifact.id)
        elif kind == "exit":
            facts["exit"] = record.exit.exit_code
    if facts["run"] is None:
        raise InvalidInputError(f"{log}: the run log holds no run record")
    facts["config"].pop("_wandb", None)
    return facts


def _artifact(log: Path, record: Any) -> dict[str, Any]:
    files = []
    for entry in record.manifest.contents:
        if entry.ref:
            raise InvalidInputError(f"{log}: artifact {record.name!r} has a reference entry "
                                    f"({entry.path} -> {entry.ref}), which cannot be imported")
        try:
            md5 = base64.b64decode(entry.digest, validate=True).hex()
        except ValueError:
            raise InvalidInputError(f"{log}: artifact {record.name!r}, {entry.path}: "
                                    f"digest {entry.digest!r} is no base64 MD5") from None
        files.append(ForeignFile(entry.path, Path(entry.local_path), "md5", md5))
    try:
        metadata = json.loads(record.metadata) if record.metadata else {}
    except ValueError:
        metadata = {"_metadata": record.metadata}
    return {"name": record.name, "type": record.type or "dataset", "files": files,
            "metadata": metadata if isinstance(metadata, dict) else {"_metadata": metadata},
            "aliases": list(record.aliases), "digest": record.digest,
            "description": record.description or None}


def _import(project: Project, facts: Mapping[str, Any], done: Mapping[str, Any],
            report: ForeignReport, progress: Progress | None) -> None:
    info = facts["run"]
    ident = f"{info.project}/{info.run_id}"
    if ident in done:
        report.runs.append({"run_id": done[ident].run_id, "source": ident, "created": False})
        return
    started = info.start_time.ToDatetime(tzinfo=UTC).isoformat() if info.HasField(
        "start_time") else None
    source = {"tool": TOOL, "id": ident, "run_id": info.run_id, "project": info.project,
              "entity": info.entity or None, "group": info.run_group or None,
              "notes": info.notes or None, "host": info.host or None, "start_time": started,
              "exit_code": facts["exit"], "log": str(facts["log"]), "used": facts["used"]}
    run = Run(project, name=info.display_name or None, job_type=info.job_type or JOB_TYPE,
              config={**facts["config"], SOURCE_KEY: source}, tags=list(info.tags),
              capture_code=False)
    outputs: list[str] = []
    dropped: set[str] = set()
    try:
        for row in facts["rows"]:
            step, at, values = _row(row, dropped)
            if values:
                run.log(values, step=step, at=at)
        for artifact in facts["artifacts"]:
            outputs.append(_log_artifact(project, run, ident, artifact, report, progress))
    except BaseException as exc:
        run.finish(error=f"{FAILED}{exc}")
        raise
    run.summary.clear()
    run.summary.update({k: v for k, v in facts["summary"].items()
                        if not k.startswith(_BOOKKEEPING)})
    if facts["exit"] == 0:
        run.finish()
    else:
        run.finish(error="the W&B run never finished" if facts["exit"] is None
                   else f"exit code {facts['exit']}")
    if dropped:
        report.notes.append(f"{ident}: history values that are no numbers or strings (W&B "
                            f"media, tables, nested values) were left out: "
                            f"{', '.join(sorted(dropped)[:5])}")
    if facts["used"]:
        report.notes.append(f"{ident}: used {', '.join(facts['used'])} (known to the log by "
                            "its server id only): kept in the run's config under _source")
    report.runs.append({"run_id": run.id, "source": ident, "created": True, "inputs": [],
                        "outputs": outputs})


def _row(row: Mapping[str, Any], dropped: set[str]
         ) -> tuple[int | None, datetime | None, dict[str, Any]]:
    """A history row's step, time and values; keys of values that are no scalars are
    added to ``dropped``."""
    step = row.get("_step")
    stamp = row.get("_timestamp")
    at = datetime.fromtimestamp(stamp, UTC) if isinstance(stamp, int | float) else None
    values: dict[str, Any] = {}
    for key, value in row.items():
        if key.startswith(_BOOKKEEPING):
            continue
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 1 << 63:
            value = float(value)  # JSON's ints are unbounded, ours int64
        if isinstance(value, int | float | str | bool):
            values[key] = value
        else:
            dropped.add(key)
    return (step if isinstance(step, int) else None), at, values


def _log_artifact(project: Project, run: Run, ident: str, artifact: Mapping[str, Any],
                  report: ForeignReport, progress: Progress | None) -> str:
    meta = {**artifact["metadata"], SOURCE_KEY: {
        "tool": TOOL, "id": f"{ident}/{artifact['name']}", "digest": artifact["digest"],
        "files": {f.path: f.digest for f in artifact["files"]}}}
    with staged(artifact["files"], Artifact(artifact["name"], artifact["type"],
                                            artifact["description"], meta),
                tool="W&B", progress=progress) as staged_artifact:
        version = run.log_artifact(staged_artifact, progress=progress)
    report.versions.append({"ref": version.ref, "source": f"{ident}/{artifact['name']}",
                            "created": version.created})
    for alias in artifact["aliases"]:
        if alias == "latest":
            continue
        try:
            set_alias(project, version.ref, validate_alias(alias))
        except InvalidInputError:
            report.notes.append(f"{version.ref}: W&B alias {alias!r} is no valid alias here")
    return version.ref


