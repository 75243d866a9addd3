"""Garbage-collection bookkeeping on the backend (docs/design.md §15).

Vocabulary:

- **condemnation**: the record "these blobs of these packs were unreferenced at
  time ``at`` (gc's clock)", stored once under ``gc/<domain>/condemned/<id>``.
  A pack listed with no blobs is an *orphan*: no index object named it. A
  *purge* condemnation is never rescued by writers (the bytes are being taken
  down). Records hold ids only: blob ids of an encrypted domain are keyed
  hashes, so they reveal nothing.
- **gc lock**: ``gc/lock``, created with ``put_if_absent`` by the one gc (or
  purge) that may sweep; it names its holder so a dead holder's lock can be
  broken (same host and dead pid, or older than :data:`LOCK_TTL`).

Both are plain envelopes of kind ``GC_RECORD``; they are not part of any
version, and ``sync`` does not copy them.
"""

from __future__ import annotations

import contextlib
import os
import platform
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from artifactstore.backends.base import Backend
from artifactstore.core import encoding
from artifactstore.core.digest import Digest
from artifactstore.core.errors import ConflictError, IntegrityError, NotFoundError
from artifactstore.core.localproc import process_exists
from artifactstore.objects.envelope import Kind, open_envelope, seal

__all__ = [
    "LOCK_KEY", "LOCK_TTL", "Condemnation", "CondemnationCache", "GcLock", "condemnations",
    "condemned_prefix",
    "write_condemnation",
]  # fmt: skip

LOCK_KEY: Final = "gc/lock"
#: a lock older than this is stale whoever holds it (seconds)
LOCK_TTL: Final = 6 * 3600.0


def condemned_prefix(domain: str) -> str:
    return f"gc/{domain}/condemned/"


@dataclass(frozen=True, slots=True)
class Condemnation:
    """One condemnation record; ``packs`` maps a pack to its condemned blobs."""

    key: str
    domain: str
    at: float
    packs: Mapping[Digest, frozenset[bytes]] = field(default_factory=dict)
    purge: bool = False

    def condemns(self, pack: Digest, blob: bytes) -> bool:
        blobs = self.packs.get(pack)
        return blobs is not None and (not blobs or blob in blobs)

    @property
    def blob_count(self) -> int:
        return sum(len(b) for b in self.packs.values())


def write_condemnation(
    backend: Backend, domain: str, packs: Mapping[Digest, frozenset[bytes]], *,
    purge: bool = False,
) -> Condemnation:
    """Record ``packs`` as condemned now; returns the record."""
    at = time.time()
    key = f"{condemned_prefix(domain)}{int(at * 1000):015d}-{secrets.token_hex(8)}"
    body = {
        "version": 1, "domain": domain, "at": at, "purge": purge,
        "packs": [[p.raw, sorted(blobs)] for p, blobs in sorted(packs.items())],
    }  # fmt: skip
    backend.put(key, seal(Kind.GC_RECORD, encoding.pack(body), binding=key.encode()))
    return Condemnation(key, domain, at, dict(packs), purge)


def _decode(key: str, data: bytes, domain: str) -> Condemnation:
    what = f"gc record {key}"
    _, plaintext = open_envelope(data, expected_kind=Kind.GC_RECORD, raw_length=None,
                                 what=what, binding=key.encode())
    body = encoding.unpack(plaintext, what=what)
    try:
        if body["version"] != 1 or body["domain"] != domain:
            raise ValueError("wrong version or domain")
        packs = {
            Digest(bytes(pack)): frozenset(bytes(b) for b in blobs)
            for pack, blobs in body["packs"]
        }
        return Condemnation(key, domain, float(body["at"]), packs, bool(body["purge"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise IntegrityError(f"{what} is malformed ({exc}); delete it and run gc again") from None


class CondemnationCache:
    """Condemnation records of one domain; records never change, so each is read once."""

    def __init__(self, backend: Backend, domain: str) -> None:
        self._backend = backend
        self._domain = domain
        self._known: dict[str, Condemnation] = {}

    def current(self) -> list[Condemnation]:
        """The records listed now (one listing; new ones fetched)."""
        listed = list(self._backend.list(condemned_prefix(self._domain)))
        found = []
        for key in listed:
            record = self._known.get(key)
            if record is None:
                try:
                    data = self._backend.get(key)
                except NotFoundError:  # swept between the listing and the read
                    continue
                record = self._known[key] = _decode(key, data, self._domain)
            found.append(record)
        self._known = {r.key: r for r in found}
        return found


def condemnations(backend: Backend, domain: str) -> list[Condemnation]:
    """Every condemnation record of ``domain`` now."""
    return CondemnationCache(backend, domain).current()


class GcLock:
    """``gc/lock``: one sweeper at a time; a dead holder's lock is broken."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._token = secrets.token_hex(8)
        self.held = False

    def _body(self) -> bytes:
        body = {"host": platform.node(), "pid": os.getpid(), "at": time.time(),
                "token": self._token}
        return seal(Kind.GC_RECORD, encoding.pack(body), binding=LOCK_KEY.encode())

    def acquire(self) -> None:
        if self._backend.put_if_absent(LOCK_KEY, self._body()):
            self.held = True
            return
        holder = self._holder()
        if holder is not None and not _stale(holder):
            raise ConflictError(
                f"another gc or purge holds the store's lock ({holder.get('host')} pid "
                f"{holder.get('pid')}); wait for it to finish, then run again"
            )
        with contextlib.suppress(NotFoundError):
            self._backend.delete(LOCK_KEY)  # a dead holder: break it
        if not self._backend.put_if_absent(LOCK_KEY, self._body()):
            raise ConflictError("another gc took the store's lock just now; run again later")
        self.held = True

    def _holder(self) -> dict[str, object] | None:
        try:
            data = self._backend.get(LOCK_KEY)
            _, plaintext = open_envelope(data, expected_kind=Kind.GC_RECORD, raw_length=None,
                                         what="gc lock", binding=LOCK_KEY.encode())
            body = encoding.unpack(plaintext, what="gc lock")
        except NotFoundError:
            return {}
        except IntegrityError:
            return None  # a damaged lock protects nothing: break it
        return body if isinstance(body, dict) else None

    def release(self) -> None:
        if self.held:
            self._backend.delete(LOCK_KEY)
            self.held = False


def _stale(holder: dict[str, object]) -> bool:
    if not holder:
        return True  # vanished: its holder finished
    at = holder.get("at")
    if not isinstance(at, float) or time.time() - at > LOCK_TTL:
        return True
    pid = holder.get("pid")
    if holder.get("host") == platform.node() and isinstance(pid, int):
        return not process_exists(pid)
    return False


    return True
