"""Opening stores by URL and whole-store maintenance over the object store.

Vocabulary: the *store URL* names where a store lives (a local path,
``s3://bucket/prefix``, ``gs://…``, ``memory://…``). When no URL is given, it
is discovered (:mod:`artifactstore.repository.discovery`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from artifactstore.backends import open_backend_stack
from artifactstore.core.chunking import ChunkerParams
from artifactstore.maintenance.verify import StoreReport as StoreVerifyReport
from artifactstore.maintenance.verify import verify_store
from artifactstore.objects.check import DomainReport as VerifyReport
from artifactstore.objects.check import check_domain
from artifactstore.objects.config import StoreConfig
from artifactstore.objects.scan import scan_domain
from artifactstore.objects.store import ObjectStore, Progress
from artifactstore.repository.discovery import discover

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


def verify_objects(store: ObjectStore, progress: Progress | None = None) -> VerifyReport:
    """Read every indexed pack of ``store``'s domain; check it and each blob in it.

    Damage is collected rather than raised so one report names every bad pack.
    Packs no index lists (left by an interrupted write) are reported, not errors.
    Whole stores, with the versions damage affects: :func:`verify_store`.
    """
    scan = scan_domain(store.backend, store.domain, store.keys)
    return check_domain(scan, list(scan.entries), progress)
