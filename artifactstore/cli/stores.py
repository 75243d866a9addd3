"""How each command opens its store: the one place that decides who may create one.

Reading never writes (docs/guide.md, "Which commands create a store"):

* commands that read (ls, show, get, diff, verify, lineage, audit, export, runs,
  alias history, project show, ...) open with ``create=False``: a missing store
  exits 13 and nothing is made, not even a folder;
* commands that add to a project (log, import) open lazily
  (``create=None``): a missing project is created by their first write, and so is
  the per-user default store (private) when no store is named; a store named by
  ``--store``, ``$ARTIFACTSTORE_URL`` or a config file must exist (exit 13 otherwise:
  a mistyped path must not start a new store; ``artifactstore init`` makes one);
* commands that change what exists (alias set/rm, delete, restore, gc, purge,
  retention) open with ``create=False``: there is nothing to change in a store that is not there.

``init`` creates explicitly; ``project create`` and ``sync`` (its destination) are
the other creators, through their own library calls.
"""

from __future__ import annotations

import argparse

import artifactstore
from artifactstore.backends import redact_url
from artifactstore.core.errors import StoreNotFoundError
from artifactstore.repository.discovery import DEFAULT_SOURCE, discover

__all__ = ["open_existing", "open_to_add"]


def open_existing(args: argparse.Namespace) -> artifactstore.Store:
    """The project of ``--store``/``--project`` for a command that reads or changes it."""
    return artifactstore.open(args.store, args.project, create=False)


def open_to_add(args: argparse.Namespace) -> artifactstore.Store:
    """The project for a command that adds to it: created by the first write if missing
    (and the store too when it is the per-user default one)."""
    store = artifactstore.open(args.store, args.project)
    if not store.exists and discover(args.store).source != DEFAULT_SOURCE:
        store.close()
        # Why: 'log --store /typo' must fail like 'ls --store /typo', not start a store.
        raise StoreNotFoundError.at(redact_url(store.url))
    return store
