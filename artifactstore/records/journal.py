"""The change journal of a project (docs/design.md §12.8): where readers ask "what is new".

Vocabulary:

- **journal entry**: an empty object ``projects/<P>/journal/<time>-<8 hex>~<rel>``
  written right after a create-only record ``projects/<P>/<rel>`` (a version, an alias
  event, a run start or event, a lifecycle event), with each ``/`` of ``<rel>`` written
  as ``~`` (no name or key segment holds one): one flat folder, one file per entry on
  a local store. ``<time>`` is the writer's UTC clock,
  ``YYYYMMDDHHMMSSffffff`` (20 digits), so entries sort by time; the 4 random bytes
  keep concurrent writers apart. The entry names the record and says nothing else.
- **window**: the entries a reader lists to see what is new since its last sync: those
  sorting after :func:`window_start`, ``GRACE`` before that sync began (one S3 request
  with ``StartAfter``: ``backends.base.list_after``). ``GRACE`` covers the time between
  a writer reading its clock and its entry landing, and clock skew between machines.
- **head**: one small overwritten object ``projects/<P>/journal-head`` (outside
  ``journal/``, so no window lists it) that a writer replaces with 16 fresh random bytes
  right after each entry: a change token. A reader that finds the token it saved at its
  last sync knows nothing was journaled since and lists no window (design §12.8, "Head";
  trusted only on stores with the ``journal-head`` feature, objects/config.py).

The journal is a hint, never a source of truth: a reader fetches and verifies the record
an entry names exactly as if it had been listed, and entries naming no record, or a key
outside the project's record prefixes, are skipped. Anything the journal misses (a writer
that died between record and entry, a writer older than the journal, a skewed clock, a
withheld entry, a record deleted behind the project's back) is found by the next full
listing, which a reader does at least every ``full_age`` (local/catalog.py).
"""

from __future__ import annotations

import contextlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Final

from artifactstore.backends import Backend
from artifactstore.backends.base import is_key
from artifactstore.core.errors import ArtifactStoreError

__all__ = ["GRACE", "PRUNE_AFTER", "entry_key", "head_key", "journal_prefix",
           "note", "old_entries", "read_head", "record_of", "window_start"]

#: how far before its last sync a reader looks again (write latency and clock skew)
GRACE: Final = timedelta(minutes=5)
#: entries older than this are pruned by gc: far past any reader's window, which starts
#: at most ``full_age`` (one hour, local/catalog.py) plus ``GRACE`` back
PRUNE_AFTER: Final = timedelta(days=1)
_TIME_DIGITS: Final = 20
_HEAD_TOKEN_BYTES: Final = 16
#: the record prefixes (relative to ``projects/<P>/``) an entry may name
_SECTIONS: Final = ("artifacts/", "runs/", "lifecycle/")
_SEP: Final = "~"


def journal_prefix(project: str) -> str:
    """``projects/<project>/journal/``."""
    return f"projects/{project}/journal/"


def head_key(project: str) -> str:
    """``projects/<project>/journal-head``: beside ``journal/``, never inside it."""
    return f"projects/{project}/journal-head"


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%d%H%M%S%f")


def entry_key(project: str, record_key: str, at: datetime | None = None,
              token: str | None = None) -> str:
    """The journal entry naming ``record_key`` (a key under ``projects/<project>/``)."""
    base = f"projects/{project}/"
    if not record_key.startswith(base):
        raise ValueError(f"{record_key!r} is not a record of project {project!r}")
    when = _stamp(at or datetime.now(UTC))
    rel = record_key[len(base):]
    if _SEP in rel:
        raise ValueError(f"{record_key!r} holds {_SEP!r}: not a record key")
    return f"{journal_prefix(project)}{when}-{token or secrets.token_hex(4)}{_SEP}" \
           + rel.replace("/", _SEP)


def note(backend: Backend, project: str, record_key: str) -> None:
    """Write the entry of a record just created; best effort (module docstring).

    Create-only, like the records. Why a failure is swallowed: the record is already
    stored, so the write it belongs to succeeded; failing it now would only make the
    caller retry a done write. A missing entry delays readers until their next full
    listing, nothing more.
    """
    # ArtifactStoreError: also a server that refuses the key (one older than this)
    with contextlib.suppress(ArtifactStoreError):
        backend.put_if_absent(entry_key(project, record_key), b"")
    # The head after the entry (the order readers rely on: design §12.8, "Head"); a plain
    # overwrite, last writer wins. Best effort too: a stale head only delays readers.
    with contextlib.suppress(ArtifactStoreError):
        backend.put(head_key(project), secrets.token_bytes(_HEAD_TOKEN_BYTES))


def read_head(backend: Backend, project: str) -> bytes | None:
    """The project's head token, or None when it is missing or cannot be read.

    None makes the reader list its window, as it would without a head: a failed read
    can only cost a listing, never hide an entry.
    """
    try:
        return backend.get(head_key(project))
    except ArtifactStoreError:
        return None


def record_of(project: str, entry: str) -> str | None:
    """The record key a listed entry names, or None for anything else under the prefix."""
    prefix = journal_prefix(project)
    if not entry.startswith(prefix):
        return None
    name, _, flat = entry[len(prefix):].partition(_SEP)
    rel = flat.replace(_SEP, "/")
    stamp, _, token = name.partition("-")
    if len(stamp) != _TIME_DIGITS or not stamp.isdigit() or len(token) != 8:
        return None
    if "/" in flat or not rel.startswith(_SECTIONS):
        return None
    key = f"projects/{project}/{rel}"
    return key if is_key(key) else None


def window_start(project: str, since: datetime) -> str:
    """The key the window lists after: entries stamped from ``since - GRACE`` on."""
    return f"{journal_prefix(project)}{_stamp(since - GRACE)}"


def old_entries(backend: Backend, project: str, now: datetime | None = None) -> list[str]:
    """Entries stamped more than ``PRUNE_AFTER`` before ``now``: what gc may delete.

    Pruning never hides a record: the record stays where it is and every full listing
    finds it; only readers whose window reaches back that far would have used the entry,
    and no window does (its start is at most ``full_age + GRACE`` old).
    """
    prefix = journal_prefix(project)
    cutoff = _stamp((now or datetime.now(UTC)) - PRUNE_AFTER)
    found = []
    for key in backend.list(prefix):
        stamp = key[len(prefix):len(prefix) + _TIME_DIGITS]
        if len(stamp) == _TIME_DIGITS and stamp.isdigit() and stamp < cutoff:
            found.append(key)
    return found
