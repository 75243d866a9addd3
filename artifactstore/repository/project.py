"""``Project``: one opened project of a store, the context every service takes.

Vocabulary: a *store* is what lives at one URL (a folder, a bucket prefix) and holds
*projects*; a ``Project`` is one of them as this process opened it: its object store
(under the current key epoch), its records (:class:`~artifactstore.records.refs.Refs`),
this machine's catalog, stat cache and file cache, and its membership. Services
(ingest, runs, lineage, maintenance, transfer) take a ``Project``; the public facade
(:class:`artifactstore.api.Store`) holds one and hands each call to a service.
:mod:`artifactstore.repository.opening` makes them (design §3).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from artifactstore.backends import AbsentBackend, require_team_role
from artifactstore.core.errors import AccessDeniedError
from artifactstore.local.filecache import FileCache
from artifactstore.local.statcache import StatCache
from artifactstore.objects.store import ObjectStore
from artifactstore.records.projects import Member, ProjectKeys
from artifactstore.records.refs import Refs, VersionRecord

if TYPE_CHECKING:
    from artifactstore.local.catalog import Catalog

__all__ = ["Project"]

T = TypeVar("T")

#: creates the store and project a pending ``Project`` stands for, and returns them opened
Creator = Callable[[], "Project"]


class Project:
    """One opened project: the components a service needs, and nothing it does."""

    def __init__(
        self,
        objects: ObjectStore,
        refs: Refs,
        *,
        url: str,
        name: str,
        file_cache: FileCache | None = None,
        backend_options: dict[str, Any] | None = None,
        catalog_path: Path | None = None,
        stat_cache_path: Path | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        pending: Creator | None = None,
    ) -> None:
        """Made by :mod:`~artifactstore.repository.opening`. ``pending``: the store or the
        project is not created yet; the first write calls it and takes over the result."""
        self.objects = objects
        self.refs = refs
        self.url = url
        self.name = name
        #: downloaded files by content, shared by every store on this machine
        self.file_cache = file_cache
        #: options the store was opened with; references to the same kind of location
        #: (s3://, gs://) use them too (endpoint, credentials)
        self.backend_options = dict(backend_options or {})
        self._catalog: Catalog | None = None
        self._catalog_path = catalog_path
        self._catalog_lock = threading.Lock()
        #: unchanged local files are re-logged without reading them (local/statcache.py)
        self.stat_cache = StatCache(stat_cache_path)
        self.cache_dir = cache_dir
        self._epochs: dict[bytes, ObjectStore] = {}
        self._epoch_lock = threading.Lock()
        self._memo: dict[str, tuple[int, Any]] = {}
        self._pending = pending
        self._pending_lock = threading.Lock()
        #: declares the user's profile on the first write (repository/profiles.py)
        self.declare_profile: Callable[[], object] | None = None
        self._admin_shown = False

    def __repr__(self) -> str:
        return f"<Project {self.name} of {self.url}>"

    @property
    def catalog(self) -> Catalog:
        """The local catalog of versions, aliases and runs that queries read (it lists
        and reads through the refs' backend: a store showing fewer records than this
        client saw is refused there too, local/watermarks.py). Opened on first use: a
        read of one version (``get``, ``show``) never needs it, and its SQLite file
        and modules cost a restore's start-up."""
        catalog = self._catalog
        if catalog is None:
            with self._catalog_lock:
                catalog = self._catalog
                if catalog is None:
                    from artifactstore.local.catalog import Catalog

                    catalog = self._catalog = Catalog(
                        self.refs.backend, self.name, self._catalog_path,
                        codec=self.refs.codec,
                        journal_head=self.objects.config.journal_head)
        return catalog

    @catalog.setter
    def catalog(self, catalog: Catalog) -> None:
        self._catalog = catalog

    @property
    def exists(self) -> bool:
        """False for a pending project over a missing store until its first write."""
        return not isinstance(self.objects.backend, AbsentBackend)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.stat_cache.close()
        self.objects.close()
        for objects in self._epochs.values():
            objects.close()
        if self._catalog is not None:
            self._catalog.close()

    def ensure_writable(self, *, admin_for: str | None = None) -> None:
        """Make this project ready for a write, or raise why this process may not write.

        Every write path (ingest, aliases, lifecycle, gc, purge, runs, imports) calls it
        before it uploads or records anything. A pending project is created here, by the
        creator its opening left, whose components this object then takes over
        (design §3, "Creating a store"); then the user's profile is declared.
        ``admin_for`` names a write only an admin may finish (``"deleting versions"``): on
        a team server, this user's role is asked first (once per opened project: the
        server still decides each write), so a reader or writer is refused in one line
        naming it (NotAuthorizedError, exit 15) before anything is written, the profile
        included. Other backends have nothing to ask.
        """
        if admin_for is not None and not self._admin_shown:
            require_team_role(self.objects.backend, self.name, "admin", admin_for)
            self._admin_shown = True
        if self._pending is not None:
            with self._pending_lock:
                create = self._pending
                if create is not None:
                    self._take_over(create())
        self.refs.codec.check_writable()
        declare, self.declare_profile = self.declare_profile, None
        if declare is not None:
            declare()

    def _take_over(self, opened: Project) -> None:
        old: list[ObjectStore | Catalog | StatCache | None] = [
            self.objects, self._catalog, self.stat_cache, *self._epochs.values()]
        self.objects, self.refs = opened.objects, opened.refs
        self._catalog, self._catalog_path = opened._catalog, opened._catalog_path
        self.file_cache, self.stat_cache = opened.file_cache, opened.stat_cache
        self._epochs = opened._epochs
        self.declare_profile = opened.declare_profile
        self._memo.clear()
        self._pending = None
        for component in old:
            if component is not None:
                component.close()

    # -- what services share -----------------------------------------------------

    def memo(self, key: str, generation: int, compute: Callable[[], T]) -> T:
        """``compute()``, kept until ``generation`` (a catalog counter) changes: the
        lineage graph, the deleted runs."""
        found = self._memo.get(key)
        if found is None or found[0] != generation:
            found = self._memo[key] = (generation, compute())
        value: T = found[1]
        return value

    def forget(self, key: str) -> None:
        self._memo.pop(key, None)

    def objects_for(self, record: VersionRecord) -> ObjectStore:
        """The object store holding ``record``'s blobs: that of the key epoch it was
        written under (the current one for new data, an older one after rotation)."""
        key_id = record.signature.key_id
        current = self.objects.keys
        if key_id is None or current is None or key_id == current.key_id:
            return self.objects
        try:
            return self.domain_objects(key_id)
        except AccessDeniedError:
            raise AccessDeniedError(
                f"version {record.ref} is encrypted under a key epoch this identity "
                "does not hold; ask a project member to add you"
            ) from None

    def domain_objects(self, key_id: bytes) -> ObjectStore:
        """The object store of this project's key epoch ``key_id`` (opened once)."""
        current = self.objects.keys
        if current is not None and key_id == current.key_id:
            return self.objects
        with self._epoch_lock:
            found = self._epochs.get(key_id)
            if found is None:
                ring = self.refs.codec.ring
                keys = None if ring is None else ring.for_key_id(key_id)
                if keys is None:
                    raise AccessDeniedError(
                        f"key epoch {key_id.hex()} of project {self.name!r} is not held "
                        "by this identity; ask a project member to add you"
                    )
                found = self._epochs[key_id] = ObjectStore(
                    self.objects.backend, self.objects.config, keys=keys,
                    cache_dir=self.cache_dir)
            return found

    def membership(self) -> tuple[dict[bytes, str], list[Member]]:
        """``(signers, current members)`` from one read of the member events: Ed25519
        key -> fingerprint of everyone who may have signed this project's records, and
        who is a member now (both empty for a project without a record)."""
        keys = ProjectKeys(self.objects.backend, self.name, None)
        return keys.signers(), keys.members()

    def same_location(self, other: Project) -> bool:
        """Both objects are the same project of the same store."""
        return (self.url, self.name) == (other.url, other.name)
