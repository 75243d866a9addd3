"""Moving, removing and protecting aliases of an opened project (design §10.2).

Every name is checked before anything is looked up or written, so a bad one creates
nothing (not even a pending project); the records are :mod:`artifactstore.records.aliases`.
"""

from __future__ import annotations

from artifactstore.model.names import validate_alias
from artifactstore.records.refs import AliasEvent
from artifactstore.repository.project import Project
from artifactstore.repository.version import find_version

__all__ = ["remove_alias", "set_alias", "set_protection"]


def set_alias(project: Project, ref: str, alias: str, *, force: bool = False,
              protect: bool | None = None) -> AliasEvent:
    """Point ``alias`` at the version ``ref`` names (``force`` moves a protected one)."""
    alias = validate_alias(alias)  # a bad alias is reported before any lookup
    version = find_version(project, ref)
    project.ensure_writable()
    project.catalog.invalidate()
    return project.refs.set_alias(version.name, alias, version.number, force=force,
                                  protect=protect)


def remove_alias(project: Project, name: str, alias: str, *, force: bool = False) -> AliasEvent:
    alias = validate_alias(alias)
    project.ensure_writable()
    project.catalog.invalidate()
    return project.refs.remove_alias(name, alias, force=force)


def set_protection(project: Project, name: str, alias: str, protect: bool) -> AliasEvent:
    """Protect ``name:alias`` where it points now, or lift its protection."""
    project.refs.alias_history(name, validate_alias(alias))  # a bad name creates nothing
    project.ensure_writable()
    project.catalog.invalidate()
    return project.refs.set_protection(name, alias, protect)
