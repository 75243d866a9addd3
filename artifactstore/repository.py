"""Opening stores by URL and whole-store maintenance over the object store.

Vocabulary: the *store URL* names where a store lives (a local path,
``s3://bucket/prefix``, ``gs://…``, ``memory://…``). When no URL is given, it
is discovered (:mod:`artifactstore.discovery`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from artifactstore.backends import open_backend
from artifactstore.backends.retry import RetryingBackend
from artifactstore.chunking import ChunkerParams
from artifactstore.digest import Digest
from artifactstore.discovery import discover
from artifactstore.errors import AccessDeniedError, ArtifactStoreError
from artifactstore.objects.config import StoreConfig
from artifactstore.objects.layout import pack_prefix, parse_id_key
from artifactstore.objects.store import ObjectStore, Progress

__all__ = [
    "StoreVerifyReport", "VerifyReport", "open_objects", "resolve_url", "verify_objects",
    "verify_store",
]


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
    backend = RetryingBackend(open_backend(resolve_url(url), **backend_options))
    wanted = None
    if create:
        options: dict[str, Any] = {"chunker": chunker}
        if pack_target is not None:
            options["pack_target"] = pack_target
        wanted = StoreConfig.new(**options)
    return ObjectStore.open(backend, create=wanted, concurrency=concurrency,
                            cache_dir=cache_dir)


@dataclass
class VerifyReport:
    """What a full verification read and found."""

    packs_checked: int = 0
    blobs_checked: int = 0
    bytes_checked: int = 0
    unindexed_packs: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.damaged


def verify_objects(store: ObjectStore, progress: Progress | None = None) -> VerifyReport:
    """Read every pack, check it and each blob in it against their ids.

    Damage is collected rather than raised so one report names every bad pack.
    Packs no index lists (left by an interrupted write) are reported, not errors.
    """
    report = VerifyReport()
    store.refresh_index()
    indexed = set(store.index.packs)
    listed: set[Digest] = set()
    for key in store.backend.list(pack_prefix(store.domain)):
        pack_id = parse_id_key(key)
        if pack_id is None:
            continue
        listed.add(pack_id)
        if pack_id not in indexed:
            report.unindexed_packs.append(key)
    for pack_id in sorted(indexed):
        if pack_id not in listed:
            report.damaged.append(f"pack {pack_id.hex} is indexed but missing")
            continue
        try:
            entries = store.verify_pack(pack_id)
        except ArtifactStoreError as exc:
            report.damaged.append(str(exc))
            continue
        checked = sum(e.length for e in entries)
        report.packs_checked += 1
        report.blobs_checked += len(entries)
        report.bytes_checked += checked
        if progress is not None:
            progress(checked)
    return report


@dataclass
class StoreVerifyReport:
    """``verify_objects`` over every key domain this user can open."""

    domains: dict[str, VerifyReport] = field(default_factory=dict)
    #: encrypted domains of other projects (or epochs this identity lacks): not read
    skipped_domains: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.domains.values())

    @property
    def damaged(self) -> list[str]:
        return [d for r in self.domains.values() for d in r.damaged]

    def total(self, attribute: str) -> int:
        return sum(int(getattr(r, attribute)) for r in self.domains.values())


def verify_store(url: str | None = None, project: str | None = None,
                 progress: Progress | None = None, **backend_options: Any) -> StoreVerifyReport:
    """Verify the plain domain and, when ``project`` is private, its key domains.

    Encrypted domains cannot be re-hashed without their keys; those of other
    projects are listed as skipped, so a clean report never hides them.
    """
    import artifactstore.store  # the API opens the project with the user's identity

    report = StoreVerifyReport()
    plain = open_objects(url, **backend_options)
    try:
        report.domains[plain.domain] = verify_objects(plain, progress)
        try:
            store = artifactstore.store.open(url, project, create=False, file_cache=False,
                                             **backend_options)
        except AccessDeniedError:
            store = None  # not a member: its domains are reported as skipped
        if store is not None:
            with store:
                ring = store.refs.codec.ring
                epochs = [] if ring is None else list(ring.epochs.values())
                for keys in sorted(epochs, key=lambda k: k.domain):
                    objects = ObjectStore(plain.backend, plain.config, keys=keys)
                    try:
                        report.domains[keys.domain] = verify_objects(objects, progress)
                    finally:
                        objects.close()
        present = {key.split("/")[1] for key in plain.backend.list("objects/")}
        report.skipped_domains = sorted(present - set(report.domains))
    finally:
        plain.close()
    return report
