"""Importing an MLflow ``mlruns`` folder (MLflow's file store): experiments, runs,
params, metrics, tags and each run's artifacts.

Vocabulary (MLflow's): ``mlruns/<experiment id>/meta.yaml`` names an **experiment**;
``mlruns/<experiment id>/<run id>/`` holds a **run**: ``meta.yaml`` (name, status,
start and end times in ms, user), ``params/<key>`` (a string each), ``metrics/<key>``
(lines of ``<timestamp ms> <value> <step>``), ``tags/<key>`` and ``artifacts/``.

Each run becomes a run of job type ``mlflow-run``: its params are its config (strings, as
MLflow keeps them), its metrics its history (one row per step, at the earliest MLflow
timestamp of its values; a key logged twice at one step starts another row), its user
tags ``key=value`` tags beside ``experiment=<name>``, its status its end
(FINISHED finished; FAILED, KILLED or still RUNNING failed, saying which). What is
MLflow's own (run id, experiment, times, status, user, every tag,
``mlflow.*`` included) is kept under the ``_source`` config key. The run's artifacts
folder becomes one version made by the run (``mlflow-<run id>`` unless ``artifact``
names one artifact for them all). MLflow keeps **no digest** of artifacts, so their
bytes cannot be checked against the source: they are copied once and the copy is what
is logged (and checked by the store from then on). A malformed metric, param or meta
file is refused naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from artifactstore.core.errors import InvalidInputError, NotFoundError
from artifactstore.model.names import validate_artifact_name
from artifactstore.objects.store import Progress
from artifactstore.repository.artifact import Artifact
from artifactstore.repository.project import Project
from artifactstore.runs.run import Run
from artifactstore.transfer.foreign.checked import (
    FAILED,
    SOURCE_KEY,
    ForeignFile,
    ForeignReport,
    imported_runs,
    log_staged,
    staged,
)
from artifactstore.transfer.foreign.yamlfiles import read_yaml

__all__ = ["JOB_TYPE", "import_mlflow"]

JOB_TYPE = "mlflow-run"
TOOL = "mlflow"
ARTIFACT_TYPE = "run-artifacts"
_STATUS = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}


def import_mlflow(project: Project, path: str | os.PathLike[str], *,
                  experiment: str | None = None, artifact: str | None = None,
                  progress: Progress | None = None) -> ForeignReport:
    """Import the ``mlruns`` folder at ``path`` into ``project`` (see the module's
    docstring); ``experiment`` imports only the experiment of that name, ``artifact``
    names the artifact every run's artifacts become versions of. Every run is read
    first: a malformed file imports nothing."""
    root = Path(path)
    if not root.is_dir() or not any(root.glob("*/meta.yaml")):
        raise NotFoundError(f"{root}: not an MLflow file store (no <experiment>/meta.yaml; "
                            "give the mlruns folder)")
    if artifact is not None:
        validate_artifact_name(artifact)
    report = ForeignReport("mlflow", str(root))
    done = imported_runs(project, TOOL)
    runs: list[dict[str, Any]] = []
    found = False
    for folder, meta in _experiments(root):
        name = str(meta.get("name", folder.name))
        if experiment is not None and name != experiment:
            continue
        found = True
        for run_dir in sorted(p for p in folder.iterdir() if (p / "meta.yaml").is_file()):
            facts = _read_run(run_dir, name)
            if facts["run_id"] in done:
                report.runs.append({"run_id": done[facts["run_id"]].run_id,
                                    "source": facts["run_id"], "created": False})
            else:
                runs.append(facts)
    if experiment is not None and not found:
        raise NotFoundError(f"{root}: no experiment named {experiment!r}")
    for facts in runs:
        _write_run(project, facts, artifact, report, progress)
    return report


def _experiments(root: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    for meta_file in sorted(root.glob("*/meta.yaml")):
        meta = read_yaml(meta_file)
        if "experiment_id" in meta:
            yield meta_file.parent, meta


def _read_run(run_dir: Path, experiment: str) -> dict[str, Any]:
    """Everything of one run folder, parsed (nothing written)."""
    meta = read_yaml(run_dir / "meta.yaml")
    run_id = str(meta.get("run_id") or run_dir.name)
    tags = _key_files(run_dir / "tags")
    try:
        status = _STATUS.get(int(meta.get("status") or 0), str(meta.get("status")))
    except (TypeError, ValueError):
        raise InvalidInputError(f"{run_dir / 'meta.yaml'}: status {meta.get('status')!r} "
                                "is not MLflow's") from None
    source = {
        "tool": TOOL, "id": run_id, "experiment": experiment,
        "experiment_id": str(meta.get("experiment_id")), "status": status,
        "start_time": _iso(meta.get("start_time")), "end_time": _iso(meta.get("end_time")),
        "user": meta.get("user_id"), "artifact_uri": meta.get("artifact_uri"), "tags": tags,
        "lifecycle_stage": meta.get("lifecycle_stage"),
    }  # fmt: skip
    return {
        "run_id": run_id, "experiment": experiment, "status": status, "source": source,
        "name": meta.get("run_name") or tags.get("mlflow.runName") or None,
        "params": _key_files(run_dir / "params"), "rows": _rows(run_dir / "metrics"),
        "tags": [f"experiment={experiment}"] + [
            f"{k}={v}"[:256] for k, v in sorted(tags.items()) if not k.startswith("mlflow.")],
        "files": list(_artifact_files(run_dir / "artifacts")),
        "artifact_uri": meta.get("artifact_uri"),
    }  # fmt: skip


def _write_run(project: Project, facts: Mapping[str, Any], artifact: str | None,
               report: ForeignReport, progress: Progress | None) -> None:
    run_id = facts["run_id"]
    name = validate_artifact_name(artifact or f"mlflow-{run_id}")
    meta_out = {SOURCE_KEY: {"tool": TOOL, "id": run_id, "experiment": facts["experiment"],
                             "artifact_uri": facts["artifact_uri"], "digests": None}}
    with staged(facts["files"], Artifact(name, ARTIFACT_TYPE, None, meta_out), tool="MLflow",
                progress=progress) as staged_artifact:
        run = Run(project, name=facts["name"], job_type=JOB_TYPE,
                  config={**facts["params"], SOURCE_KEY: facts["source"]},
                  tags=facts["tags"], capture_code=False)
        outputs: list[str] = []
        try:
            for step, at, values in facts["rows"]:
                run.log(values, step=step, at=at)
            if facts["files"]:
                version = log_staged(project, staged_artifact, run, progress)
                outputs.append(version.ref)
                report.versions.append({"ref": version.ref, "source": f"{run_id}/artifacts",
                                        "created": version.created})
        except BaseException as exc:
            run.finish(error=f"{FAILED}{exc}")
            raise
    if facts["status"] == "FINISHED":
        run.finish()
    else:
        run.finish(error=f"the MLflow run ended {facts['status']}")
    report.runs.append({"run_id": run.id, "source": run_id, "created": True,
                        "inputs": [], "outputs": outputs})


def _key_files(folder: Path) -> dict[str, str]:
    """``params/`` or ``tags/``: each file's path (keys may hold '/') -> its text."""
    if not folder.is_dir():
        return {}
    result = {}
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            result[file.relative_to(folder).as_posix()] = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInputError(f"{file}: cannot read it as UTF-8 text ({exc})") from None
    return result


def _rows(folder: Path) -> list[tuple[int, datetime, dict[str, Any]]]:
    """Every metric value as rows: by step then time, one row per step (at the earliest
    timestamp of its values), a key met twice at one step starting a new row."""
    points: list[tuple[int, int, str, float]] = []
    for key, text in _key_files(folder).items():
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                ms, value, *rest = line.split()
                step = int(rest[0]) if rest else 0
                points.append((step, int(ms), key, float(value)))
            except (ValueError, IndexError):
                raise InvalidInputError(f"{folder / key}: line {number} is not "
                                        f"'<timestamp> <value> <step>': {line[:80]!r}") from None
    points.sort(key=lambda p: (p[0], p[1]))
    rows: list[tuple[int, datetime, dict[str, Any]]] = []
    for step, when, key, val in points:
        at = datetime.fromtimestamp(when / 1000, UTC)
        if not rows or rows[-1][0] != step or key in rows[-1][2]:
            rows.append((step, at, {}))
        rows[-1][2][key] = val
    return rows


def _artifact_files(folder: Path) -> Iterator[ForeignFile]:
    if not folder.is_dir():
        return
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        yield ForeignFile(file.relative_to(folder).as_posix(), file)


def _iso(ms: Any) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(int(ms) / 1000, UTC).isoformat(timespec="milliseconds")
