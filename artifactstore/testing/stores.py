"""Stores for tests: created with a short commit window, so gc can sweep within a test."""

from __future__ import annotations

from typing import Any

from artifactstore.backends import open_backend
from artifactstore.objects import config as config_mod
from artifactstore.objects.config import StoreConfig

__all__ = ["QUICK_WINDOW", "init_quick_store"]

#: seconds: a writer commits within half of it after its check; gc sweeps after it
QUICK_WINDOW = 0.5


def init_quick_store(url: str, *, commit_window: float = QUICK_WINDOW,
                     **backend_options: Any) -> None:
    """Create the store at ``url`` with a short commit window (tests only: real
    stores keep the default, which tolerates slow networks)."""
    backend = open_backend(url, **backend_options)
    try:
        config_mod.create_or_load(backend, StoreConfig.new(commit_window=commit_window))
    finally:
        backend.close()
