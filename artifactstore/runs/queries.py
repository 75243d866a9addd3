"""Questions about a project's runs, answered from the local catalog (design §12.6).

The catalog mirrors the run records; these functions filter them, resolve an id or a
unique prefix of one, and stream a run's metrics from the store. Deleted runs are
left out unless asked for (design §14).
"""

from __future__ import annotations

import platform
from collections.abc import Iterator
from datetime import datetime

from artifactstore.core.errors import InvalidInputError, NotFoundError
from artifactstore.local.catalog import RunInfo
from artifactstore.records.runs import STATUSES, MetricsRow, RunLog, parse_time, validate_run_id
from artifactstore.repository.project import Project

__all__ = ["deleted_runs", "find_runs", "get_run", "run_history", "this_host"]


def this_host() -> str:
    """This machine's name, as run records note it (a heartbeat is judged per host)."""
    return platform.node() or "localhost"


def find_runs(
    project: Project,
    *,
    job_type: str | None = None,
    status: str | None = None,
    tag: str | None = None,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    sync: bool | None = None,
    include_deleted: bool = False,
) -> list[RunInfo]:
    """The project's runs, oldest first, filtered by job type, status, tag and start time."""
    if status is not None and status not in STATUSES:
        raise InvalidInputError(f"unknown status {status!r}: use one of {', '.join(STATUSES)}")
    low = _as_time("since", since)
    high = _as_time("until", until)
    project.catalog.ensure_fresh(sync)
    deleted = frozenset() if include_deleted else deleted_runs(project)
    found = []
    for run in project.catalog.runs(host=this_host()):
        if run.run_id in deleted:
            continue
        started = parse_time(run.started_at)
        if (
            (job_type is None or run.job_type == job_type)
            and (status is None or run.status == status)
            and (tag is None or tag in run.tags)
            and (low is None or started >= low)
            and (high is None or started < high)
        ):
            found.append(run)
    return found


def deleted_runs(project: Project) -> frozenset[str]:
    """Deleted run ids, read again only when the catalog synced (same freshness)."""
    return project.memo("deleted runs", project.catalog.syncs,
                        lambda: frozenset(project.refs.lifecycle_state().deleted_runs))


def get_run(project: Project, run_id: str, *, sync: bool | None = None) -> RunInfo:
    """One run by id (a unique prefix of the id is enough)."""
    if not isinstance(run_id, str):
        raise InvalidInputError(f"a run id is a str, got {type(run_id).__name__}")
    project.catalog.ensure_fresh(sync)
    matches = project.catalog.runs(host=this_host(), prefix=run_id)
    exact = [r for r in matches if r.run_id == run_id]
    if exact or len(matches) == 1:
        return (exact or matches)[0]
    if not matches:
        if len(run_id) >= 31:  # a whole id: say so if it is malformed, not just absent
            validate_run_id(run_id)
        raise NotFoundError(
            f"run {run_id!r} not found in project {project.name!r}; "
            "run 'artifactstore runs ls' to see the runs"
        )
    raise InvalidInputError(
        f"run id prefix {run_id!r} matches {len(matches)} runs; give more characters"
    )


def run_history(project: Project, run_id: str, *, sync: bool | None = None
                ) -> Iterator[MetricsRow]:
    """The metrics rows of a run in order, streamed segment by segment."""
    log = RunLog(project.objects.backend, project.name, project.refs.codec)
    run_id = get_run(project, run_id, sync=sync).run_id
    for seq in log.seqs(run_id, "metrics"):
        yield from log.read_metrics(run_id, seq)


def _as_time(what: str, value: str | datetime | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value) if isinstance(value, str) else parse_time(value.isoformat())
    except ValueError:
        raise InvalidInputError(
            f"{what} {value!r:.40} is not a time: use ISO-8601, e.g. 2026-11-26T12:00"
        ) from None
