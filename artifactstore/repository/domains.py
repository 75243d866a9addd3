"""The key domains of a store that one user can read, for whole-store maintenance.

Vocabulary: the *plain* domain holds public projects' blobs; a private project's
blobs live in one domain per key epoch (docs/design.md §13.3). A member of
``project`` reads the plain domain and that project's domains. Encrypted
domains of other projects (or epochs this identity lacks) are *skipped*:
named in reports, never read, so a clean report never hides them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from artifactstore.backends import Backend, open_backend_stack, redact_url
from artifactstore.core.errors import AccessDeniedError, IntegrityError
from artifactstore.objects import config as config_mod
from artifactstore.objects.config import StoreConfig
from artifactstore.objects.domainkeys import DomainKeys
from artifactstore.objects.layout import PLAIN_DOMAIN
from artifactstore.repository.discovery import discover
from artifactstore.repository.opening import open_at
from artifactstore.repository.project import Project

__all__ = ["Domains", "open_domains"]


@dataclass
class Domains:
    """What a maintenance pass over one store and project works on."""

    backend: Backend
    config: StoreConfig
    #: the project, or None when this identity may not open it
    project: Project | None
    #: readable domains: name -> keys (None for the plain domain), plain first
    keys: dict[str, DomainKeys | None] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    #: why the project could not be opened as trusted (its records contradict each
    #: other, or differ from this machine's pin); None when it opened or is not ours
    refused: IntegrityError | None = None


@contextmanager
def open_domains(url: str | None = None, project: str | None = None, *,
                 cache_dir: str | os.PathLike[str] | None = None,
                 **backend_options: Any) -> Iterator[Domains]:
    """Open the store at ``url`` and ``project`` in it; close both afterwards."""
    where = discover(url).url
    backend = open_backend_stack(where, **backend_options)  # creates nothing
    project_ = None
    try:
        config = config_mod.load(backend, redact_url(where))
        refused = None
        try:
            project_ = open_at(url, project, create=False, file_cache=False,
                               cache_dir=cache_dir, **backend_options)
        except AccessDeniedError:
            pass  # not a member: its domains are skipped
        except IntegrityError as exc:
            refused = exc  # the maintenance pass reports it (and checks the project records)
        found = Domains(backend, config, project_, {PLAIN_DOMAIN: None}, refused=refused)
        ring = None if project_ is None else project_.refs.codec.ring
        for keys in sorted(() if ring is None else ring.epochs.values(), key=_domain):
            found.keys[keys.domain] = keys
        present = {key.split("/")[1] for key in backend.list("objects/")}
        found.skipped = sorted(present - set(found.keys))
        yield found
    finally:
        if project_ is not None:
            project_.close()
        backend.close()


def _domain(keys: DomainKeys) -> str:
    return keys.domain
