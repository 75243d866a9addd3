"""One way to open a store: the backend stack, the store's config, and a project of it.

Vocabulary: the *store URL* names where a store lives (a local path,
``s3://bucket/prefix``, ``gs://…``, ``memory://…``); when no URL is given it is
discovered (:mod:`artifactstore.repository.discovery`). :func:`open_project` opens one
project as a :class:`~artifactstore.repository.project.Project`; :func:`open_objects`
opens the object store alone (whole-store tools, benchmarks).

Opening writes nothing to the store. What creates a store or a project, and when, is
design §3 ("Creating a store"): ``create=True`` now, ``create=None`` on the first write
(local and memory stores, and missing projects), ``create=False`` never.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from artifactstore.backends import (
    AbsentBackend,
    Backend,
    ReadOnlyBackend,
    open_backend_stack,
    redact_url,
)
from artifactstore.backends.immutable_cache import ImmutableCacheBackend
from artifactstore.core.chunking import ChunkerParams
from artifactstore.core.errors import NotFoundError, StoreNotFoundError
from artifactstore.core.privatefiles import private_folder
from artifactstore.local.clientstate import known_dir
from artifactstore.local.filecache import FileCache
from artifactstore.local.identity import identity_path
from artifactstore.local.pins import PinBook
from artifactstore.local.watermarks import with_marks
from artifactstore.model.names import validate_project_name
from artifactstore.objects.config import StoreConfig, create_or_load
from artifactstore.objects.config import load as load_config
from artifactstore.objects.store import ObjectStore, default_cache_dir
from artifactstore.records.codec import RecordCodec, sealed_as_current
from artifactstore.records.projects import immutable_project_key
from artifactstore.records.refs import Refs
from artifactstore.records.versions import is_version_key
from artifactstore.repository.access import PRIVATE_BY_DEFAULT, project_access
from artifactstore.repository.discovery import DEFAULT_SOURCE, discover
from artifactstore.repository.profiles import profile_declarer
from artifactstore.repository.project import Project

__all__ = ["LOCAL_SCHEMES", "Opening", "open_at", "open_objects", "open_project", "resolve_url",
           "scheme_of"]

#: stores of these schemes live on this machine
LOCAL_SCHEMES = ("", "file", "memory")


def scheme_of(url: str) -> str:
    """``s3``, ``gs``, ``https``, … or ``""`` for a local path."""
    return url.split("://", 1)[0] if "://" in url else ""


@dataclass(frozen=True, slots=True)
class Opening:
    """What a caller asked to open: enough to open the project again, with creation,
    on its first write (design §3, "Creating a store")."""

    url: str
    project: str
    #: None creates on the first write, False never, True now
    create: bool | None
    #: the per-user default store (discovery's last resort): created private
    default_store: bool = False
    concurrency: int = 8
    cache_dir: str | os.PathLike[str] | None = None
    #: downloads go through the per-user file cache: None for remote stores only
    file_cache: bool | None = None
    passphrase: str | None = None
    backend_options: dict[str, Any] | None = None

    @property
    def lazy(self) -> bool:
        """Whether a missing store is created on the first write instead of refused."""
        return self.create is None and scheme_of(self.url) in LOCAL_SCHEMES

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.backend_options or {})

    def new_config(self) -> StoreConfig:
        # The per-user default store holds what a user logs without choosing a store:
        # private like 'artifactstore init', so nothing leaves the machine in plaintext.
        return StoreConfig.new(optional_features=(PRIVATE_BY_DEFAULT,) if self.default_store
                               else ())


def open_project(how: Opening) -> Project:
    """The project ``how`` names, opened (and with ``create=True`` created now)."""
    return _open(how, create=how.create is True)[0]


def open_at(
    url: str | os.PathLike[str] | None = None,
    project: str | None = None,
    *,
    create: bool | None = None,
    concurrency: int = 8,
    cache_dir: str | os.PathLike[str] | None = None,
    file_cache: bool | None = None,
    passphrase: str | None = None,
    **backend_options: Any,
) -> Project:
    """Project ``project`` of the store at ``url`` (discovered when None; the project
    discovery names, else ``default``), opened: the arguments of
    :func:`artifactstore.open`, which documents them."""
    location = discover(None if url is None else os.fspath(url))
    return open_project(Opening(
        url=location.url,
        project=validate_project_name(project or location.project or "default"),
        create=create, default_store=location.source == DEFAULT_SOURCE,
        concurrency=concurrency, cache_dir=cache_dir, file_cache=file_cache,
        passphrase=passphrase, backend_options=dict(backend_options),
    ))


#: what a pending project's first opening saw: the store's config and the listing of the
#: project's keys that found no record
_Seen = tuple[StoreConfig, tuple[str, ...]]


def _open(how: Opening, *, create: bool, seen: _Seen | None = None) -> tuple[Project, bool]:
    """The opened project, and whether this call created the store's config. ``seen``:
    the config a pending project's first opening read and its listing that saw the project
    absent (its creation reads neither again: three requests fewer on a first write)."""
    try:
        backend: Backend = open_backend_stack(how.url, create=create, **how.options)
    except StoreNotFoundError:
        if not how.lazy:
            raise
        return _absent_project(how), False
    try:
        if seen is not None:
            config, created = seen[0], False
        elif create:
            config, created = create_or_load(backend, how.new_config())
        else:
            config, created = load_config(backend, redact_url(how.url)), False
    except StoreNotFoundError:
        backend.close()
        if not how.lazy:
            raise
        return _absent_project(how), False
    except BaseException:
        backend.close()
        raise
    objects = ObjectStore(backend, config, concurrency=how.concurrency, cache_dir=how.cache_dir)
    # Project records, member events, key epochs and slots are create-only: read once.
    refs_cache = local_cache_path(objects, how.url, how.cache_dir, "refs", "")
    access = project_access(
        backend if refs_cache is None else ImmutableCacheBackend(
            backend, refs_cache, immutable_project_key), how.project,
        private_by_default=PRIVATE_BY_DEFAULT in config.optional_features,
        # Opening never creates a project (read-only media, read commands): the first
        # write opens again with creation (Project.ensure_writable).
        may_create=create and backend.supports_atomic_create, passphrase=how.passphrase,
        seen_absent=None if seen is None else seen[1],
        pins=_pins(backend.url, how.project, objects, how.cache_dir),
    )
    pending = None if create or access.info is not None else how
    if pending is not None:
        # Safety net: a write that skipped ensure_writable must not land in a project
        # that is not created yet (it would be plaintext in a private-by-default store).
        backend = ReadOnlyBackend(backend, reason=(
            f"project {how.project!r} is not created yet; this write skipped the step "
            "that creates it (a bug: please report it)"))
    if access.ring is not None or pending is not None:
        objects.close()
        objects = ObjectStore(
            backend, config, keys=None if access.ring is None else access.ring.current,
            concurrency=how.concurrency, cache_dir=how.cache_dir)
    files = None
    file_cache = how.file_cache
    if file_cache is None:  # a local store is its own cache: copying twice only costs
        file_cache = scheme_of(how.url) not in LOCAL_SCHEMES
    if file_cache:
        files = FileCache(Path(how.cache_dir) / "files" if how.cache_dir is not None else None)
    codec = access.codec
    # Version records too, while sealed as the project seals now (re-encryption
    # rewrites only those sealed under an older epoch): a re-log of unchanged
    # content then reads its head version from disk.
    refs_backend = backend if refs_cache is None else ImmutableCacheBackend(
        backend, refs_cache, is_version_key, lambda _, data: sealed_as_current(codec, data))
    # A store that shows less than this client saw is refused, not believed (watermarks.py).
    project = Project(
        objects,
        Refs(with_marks(refs_backend, how.project, how.cache_dir, codec), how.project, codec),
        url=how.url,
        name=how.project,
        file_cache=files,
        backend_options=how.options,
        catalog_path=local_cache_path(objects, how.url, how.cache_dir, "catalog",
                                      f"{how.project}.sqlite"),
        stat_cache_path=local_cache_path(objects, how.url, how.cache_dir, "stat",
                                         f"{objects.domain}.sqlite"),
        cache_dir=how.cache_dir,
        pending=None if pending is None else _creator(
            how, backend, None if access.listed is None else (config, access.listed)),
    )
    if pending is None:
        known = known_dir(_cache_root(how.cache_dir), backend.url)
        project.declare_profile = profile_declarer(
            backend, how.project, codec, access.identity,
            None if known is None else known / how.project)
    return project, created


def _absent_project(how: Opening) -> Project:
    """A pending project where no store exists yet: reads raise ``StoreNotFoundError``;
    the first write creates it (nothing, not even a folder, is made before)."""
    backend = AbsentBackend(redact_url(how.url))
    return Project(
        ObjectStore(backend, StoreConfig.new(), concurrency=1, cache_dir=how.cache_dir),
        Refs(backend, how.project, RecordCodec()),
        url=how.url, name=how.project, backend_options=how.options,
        cache_dir=how.cache_dir, pending=_creator(how, backend, None),
    )


def _creator(how: Opening, backend: Backend, seen: _Seen | None) -> Callable[[], Project]:
    """What the first write of a pending project calls: it opens the project again,
    creating the store and the project."""

    def create() -> Project:
        if how.create is False and not any(
                True for _ in backend.list(f"projects/{how.project}/")):
            raise NotFoundError(
                f"project {how.project!r} does not exist in {redact_url(how.url)}; create "
                f"it with 'artifactstore project create {how.project}' (or log into it)")
        opened, created = _open(how, create=True, seen=seen)
        if created and how.default_store:
            _announce_default_store(redact_url(how.url))
        return opened

    return create


def _announce_default_store(url: str) -> None:
    """Tell the user once, when the per-user default store is created, where it is and
    that its private projects open only with the identity (which to back up)."""
    print(
        f"artifactstore: created your default store at {url} (private: projects are "
        f"encrypted for your identity); copy your identity file {identity_path()} to a "
        "safe place, without it nothing in this store can be read "
        "('artifactstore identity show --json' names it)",
        file=sys.stderr,
    )


def _cache_root(cache_dir: str | os.PathLike[str] | None) -> Path:
    return Path(cache_dir) if cache_dir is not None else default_cache_dir()


def _pins(url: str, project: str, objects: ObjectStore,
          cache_dir: str | os.PathLike[str] | None) -> PinBook | None:
    """This machine's pin of ``project`` (local/pins.py); None for a memory store."""
    known = known_dir(_cache_root(cache_dir), url)
    return None if known is None else PinBook(known, project, objects.config.store_id)


def local_cache_path(objects: ObjectStore, url: str, cache_dir: str | os.PathLike[str] | None,
                     kind: str, name: str) -> Path | None:
    """``<cache>/<kind>/<store id>-<location hash>/<name>``; None for a memory store."""
    if url.startswith("memory://"):
        return None  # the store lives in this process: so do its caches
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    where = hashlib.sha256(objects.backend.url.encode()).hexdigest()[:16]
    folder = root / kind / f"{objects.config.store_id}-{where}"
    with contextlib.suppress(OSError):  # an unusable cache is met (and reported) by its user
        private_folder(folder, root=root)
    return folder / name


def resolve_url(url: str | None) -> str:
    """Explicit URL, else discovery (environment, config file, per-user default)."""
    return discover(url).url


def open_objects(
    url: str | None = None,
    *,
    create: bool = False,
    chunker: ChunkerParams | None = None,
    pack_target: int | None = None,
    concurrency: int = 8,
    cache_dir: Path | None = None,
    **backend_options: Any,
) -> ObjectStore:
    """Open (or with ``create``, initialise) the object store at ``url``.

    Transient backend failures are retried with backoff.
    """
    # Opening never makes a folder; without create, a missing store raises StoreNotFoundError.
    backend = open_backend_stack(resolve_url(url), create=create, **backend_options)
    wanted = None
    if create:
        options: dict[str, Any] = {"chunker": chunker}
        if pack_target is not None:
            options["pack_target"] = pack_target
        wanted = StoreConfig.new(**options)
    return ObjectStore.open(backend, create=wanted, concurrency=concurrency,
                            cache_dir=cache_dir)
