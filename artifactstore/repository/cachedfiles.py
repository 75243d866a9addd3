"""This machine's file cache meets the project's purges (design §16).

A purge wipes bytes everywhere they went, this machine's per-user file cache
included: what a purge or a takedown removed must not stay readable from the cache,
and a version downloaded before its purge must not keep its files there.
"""

from __future__ import annotations

import contextlib

from artifactstore.core.digest import Digest
from artifactstore.model.names import version_label
from artifactstore.records.lifecycle import LifecycleState
from artifactstore.repository.project import Project

__all__ = ["forget_cached", "forget_purged"]


def forget_purged(project: Project, state: LifecycleState | None = None) -> int:
    """This machine's file cache meets the purge tombstones of the project: entries that
    came from a purged version (noted when it was downloaded) and that no other noted
    version holds are removed; returns how many. Cheap when nothing was purged: one
    listing of the lifecycle log (none when ``state``, a listing just made, is given),
    one ``stat`` per purged version."""
    cache = project.file_cache
    if cache is None:
        return 0
    store_id = project.objects.config.store_id
    removed = 0
    if state is None:
        state = project.refs.lifecycle_state()
    for artifact, numbers in state.deleted.items():
        for number, event in numbers.items():
            if event.action == "purge":
                name = cache.version_name(store_id, project.name,
                                          f"{artifact}:{version_label(number)}")
                removed += cache.drop_version(name)
    return removed


def forget_cached(project: Project, digests: list[Digest]) -> int:
    """Remove these contents from this machine's file cache; returns how many were there."""
    cache = project.file_cache
    if cache is None:
        return 0
    removed = 0
    for digest in digests:
        path = cache.path_for(digest)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed += 1
    return removed
