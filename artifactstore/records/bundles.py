"""Record bundles (docs/design.md §12.9): many records' stored bytes in one object, so a
new reader's first catalog sync makes a few large GETs instead of one per record.

Vocabulary:

- **bundle**: ``projects/<P>/bundles/<time>-<8 hex>``, canonical msgpack
  ``{"v": 1, "records": [[rel, bytes], ...]}``: ``rel`` a record's key after
  ``projects/<P>/`` (versions, alias events, run starts and events, lifecycle events),
  ``bytes`` that object's stored bytes, copied verbatim (still sealed: signed, and
  encrypted in a private project). Written by :func:`write_bundles` (``maintenance``,
  any member who may write the project), never changed; a newer bundle only adds.
- **prefetched read**: a reader reads a bundled record exactly as if it had fetched the
  key (:class:`Prefetched` answers ``get`` from the bundle), and only when it is sealed
  under the project's key or validly signed for that key (:func:`authentic`): the
  signature and the AEAD bind each record to its own key, so a bundle carries nothing a
  GET of that key could not; a record that fails to decode is fetched after all.
- The listing, not a bundle, says which records exist: a bundled record that is not
  listed is ignored, and a listed record missing from every bundle is fetched.

A malformed bundle is skipped whole (its records are then fetched one by one).
"""

from __future__ import annotations

import os
import secrets
import threading
from collections import deque
from collections.abc import Callable, Container, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Final, Generic, TypeVar

from artifactstore.backends import Backend
from artifactstore.backends._wrapper import BackendWrapper
from artifactstore.core import encoding
from artifactstore.core.errors import ArtifactStoreError, NotFoundError
from artifactstore.objects.envelope import Kind
from artifactstore.records.codec import RecordCodec, Signature

__all__ = ["BUNDLE_SIZE", "Ahead", "Checked", "OpenedCodec", "Prefetched", "authentic",
           "bundles_prefix", "each_bundle", "read_bundles", "write_bundles"]

T = TypeVar("T")

#: records per bundle (about 0.5-2 MB of small records)
BUNDLE_SIZE: Final = 5000
_WORKERS: Final = 16
#: threads verifying a bundle's signatures, and records per task (one bundle at a time)
_VERIFY_WORKERS: Final = min(4, os.cpu_count() or 1)
_VERIFY_PART: Final = 500
#: bytes of checked bundles an :class:`Ahead` holds before the caller takes them
_AHEAD_BYTES: Final = 32 << 20
_SECTIONS: Final = ("artifacts/", "runs/", "lifecycle/")


def bundles_prefix(project: str) -> str:
    """``projects/<project>/bundles/``."""
    return f"projects/{project}/bundles/"


def is_bundled_kind(rel: str) -> bool:
    """Create-only records a catalog reads: not heartbeats (overwritten), not metrics."""
    if not rel.startswith(_SECTIONS):
        return False
    if rel.startswith("runs/"):
        return rel.endswith("/start") or "/events/" in rel
    return "/versions/" in rel or "/aliases/" in rel or rel.startswith("lifecycle/")


def _kind(rel: str) -> Kind:
    if rel.startswith("lifecycle/"):
        return Kind.LIFECYCLE
    if rel.startswith("runs/"):
        return Kind.RUN if rel.endswith("/start") else Kind.RUN_EVENT
    return Kind.VERSION if "/versions/" in rel else Kind.ALIAS_EVENT


#: what a check found: key -> (the very bytes checked, their kind, the valid signer)
Checked = dict[str, tuple[bytes, Kind, bytes]]


def authentic(codec: RecordCodec, key: str, rel: str, data: bytes,
              checked: Checked | None = None) -> bool:
    """Whether bundled bytes may stand for a GET of ``key``: sealed under the project's key
    (an encrypted project: the AEAD, checked when decoded, binds the key), or carrying a
    valid signature bound to ``key``. An unsigned or badly signed record is fetched.
    ``checked`` keeps whose signature was found valid on which bytes, so the decode does
    not verify it twice."""
    if codec.encrypted:
        return True
    kind = _kind(rel)
    try:
        signature = codec.check(kind, key, data)
    except ArtifactStoreError:
        return False
    if signature.state != "valid" or signature.signer is None:
        return False
    if checked is not None:
        checked[key] = (data, kind, signature.signer)
    return True


class OpenedCodec(RecordCodec):
    """``codec``, not verifying again a signature :func:`authentic` found valid on the
    very same bytes, kind and key."""

    def __init__(self, codec: RecordCodec, checked: Checked) -> None:
        super().__init__(signer=codec.signer, ring=codec.ring, refusal=codec.refusal)
        self._checked = checked

    def open(self, kind: Kind, key: str, data: bytes, *,
             verified: bytes | None = None) -> tuple[Any, Signature]:
        hit = self._checked.pop(key, None)
        if verified is None and hit is not None and hit[0] is data and hit[1] == kind:
            verified = hit[2]
        return super().open(kind, key, data, verified=verified)


def encode(records: Iterable[tuple[str, bytes]]) -> bytes:
    return encoding.pack({"v": 1, "records": [[rel, data] for rel, data in records]})


def decode(data: bytes) -> dict[str, bytes]:
    """``rel -> bytes``; ValueError for anything that is not a version-1 bundle."""
    try:
        value: Any = encoding.unpack(data, what="bundle")
    except ArtifactStoreError as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(value, dict) or value.get("v") != 1:
        raise ValueError("not a version-1 bundle")
    found: dict[str, bytes] = {}
    for item in value.get("records", ()):
        if (not isinstance(item, list) or len(item) != 2 or not isinstance(item[0], str)
                or not isinstance(item[1], bytes)):
            raise ValueError("a bundle entry is not [str, bytes]")
        found[item[0]] = item[1]
    return found


def _map(fn: Any, items: list[Any], workers: int = _WORKERS) -> list[Any]:
    if len(items) <= 1 or workers <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(min(workers, len(items))) as pool:
        return list(pool.map(fn, items))


def read_bundles(backend: Backend, project: str, wanted: set[str],
                 codec: RecordCodec | None = None,
                 checked: Checked | None = None) -> dict[str, bytes]:
    """The stored bytes of the ``wanted`` keys that some bundle carries (full keys); with
    ``codec``, only those :func:`authentic` accepts (what it found into ``checked``)."""
    base = f"projects/{project}/"

    def fetch(key: str) -> dict[str, bytes]:
        try:
            return decode(backend.get(key))
        except (NotFoundError, ValueError):
            return {}

    found: dict[str, bytes] = {}
    for bundle in _map(fetch, list(backend.list(bundles_prefix(project)))):
        for rel, data in bundle.items():
            key = base + rel
            if key in wanted and is_bundled_kind(rel) and (
                    codec is None or authentic(codec, key, rel, data, checked)):
                found[key] = data
    return found


def each_bundle(backend: Backend, project: str, wanted: Container[str] | None,
                codec: RecordCodec) -> Iterator[tuple[dict[str, bytes], Checked]]:
    """Per bundle, one at a time: the stored bytes of the ``wanted`` keys (None: every
    bundled record) it carries that :func:`authentic` accepts, and what that check found
    (for :class:`OpenedCodec`)."""
    base = f"projects/{project}/"

    def check(part: list[tuple[str, str, bytes]]) -> tuple[dict[str, bytes], Checked]:
        found: dict[str, bytes] = {}
        checked: Checked = {}
        for key, rel, data in part:
            if authentic(codec, key, rel, data, checked):
                found[key] = data
        return found, checked

    for name in list(backend.list(bundles_prefix(project))):
        try:
            bundle = decode(backend.get(name))
        except (NotFoundError, ValueError):
            continue
        items = [(base + rel, rel, data) for rel, data in bundle.items()
                 if (wanted is None or base + rel in wanted) and is_bundled_kind(rel)]
        del bundle
        # Ed25519 verification releases the GIL in recent cryptography releases (51 here;
        # older ones verify one part at a time, as before): parts of a bundle verify on
        # several cores; memory stays that of one bundle.
        found: dict[str, bytes] = {}
        checked: Checked = {}
        parts = [items[i:i + _VERIFY_PART] for i in range(0, len(items), _VERIFY_PART)]
        for part_found, part_checked in _map(check, parts, _VERIFY_WORKERS):
            found.update(part_found)
            checked.update(part_checked)
        if found:
            yield found, checked


def _as_found(found: dict[str, bytes], checked: Checked) -> tuple[dict[str, bytes], Checked]:
    return found, checked


class Ahead(Generic[T]):
    """:func:`each_bundle` of every bundled record, run in a background thread while the
    caller lists the project (a first catalog sync): the signatures are checked during the
    listing, not after it, and each checked bundle is handed to ``prepare`` in the same
    thread (by default kept as ``(found, checked)``; the catalog decodes it into its rows
    there). At most ``limit`` bytes of checked bundles (their stored bytes) wait to be
    taken (memory does not grow with the project); the caller still keeps only listed
    records. Iterate once; :meth:`close` stops the thread (always call it)."""

    def __init__(self, backend: Backend, project: str, codec: RecordCodec, *,
                 limit: int = _AHEAD_BYTES,
                 prepare: Callable[[dict[str, bytes], Checked], T] = _as_found,  # type: ignore[assignment]
                 ) -> None:
        self._args = (backend, project, codec)
        self._limit = limit
        self._prepare = prepare
        self._ready: deque[tuple[T, int]] = deque()
        self._cond = threading.Condition()
        self._held = 0
        self._done = self._closed = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bundles-ahead", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        backend, project, codec = self._args
        try:
            for found, checked in each_bundle(backend, project, None, codec):
                size = sum(len(v) for v in found.values())
                with self._cond:
                    while self._held and self._held + size > self._limit and not self._closed:
                        self._cond.wait()
                    if self._closed:
                        return
                prepared = self._prepare(found, checked)
                del found, checked
                with self._cond:
                    if self._closed:
                        return
                    self._ready.append((prepared, size))
                    self._held += size
                    self._cond.notify_all()
        except BaseException as exc:  # raised again in the caller's thread
            self._error = exc
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def __iter__(self) -> Iterator[T]:
        while True:
            with self._cond:
                while not self._ready and not self._done:
                    self._cond.wait()
                if not self._ready:
                    if self._error is not None:
                        raise self._error
                    return
                prepared, size = self._ready.popleft()
                self._held -= size
                self._cond.notify_all()
            yield prepared

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._ready.clear()
            self._cond.notify_all()
        self._thread.join()


def write_bundles(backend: Backend, project: str, *, size: int = BUNDLE_SIZE) -> int:
    """Bundle every listed record no bundle carries yet; returns how many were bundled.

    Reads what the existing bundles carry, lists the record prefixes, fetches the rest
    and writes them in new bundles of up to ``size`` records.
    """
    base = f"projects/{project}/"
    listed = [k[len(base):] for prefix in _SECTIONS for k in backend.list(base + prefix)]
    wanted = {rel for rel in listed if is_bundled_kind(rel)}
    carried = read_bundles(backend, project, {base + rel for rel in wanted})
    todo = sorted(rel for rel in wanted if base + rel not in carried)

    def fetch(rel: str) -> tuple[str, bytes] | None:
        try:
            return rel, backend.get(base + rel)
        except NotFoundError:
            return None  # deleted since the listing

    done = 0
    for start in range(0, len(todo), size):
        got = [r for r in _map(fetch, todo[start:start + size]) if r is not None]
        if got:
            stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
            key = f"{bundles_prefix(project)}{stamp}-{secrets.token_hex(4)}"
            backend.put_if_absent(key, encode(got))
            done += len(got)
    return done


class Prefetched(BackendWrapper):
    """Answers ``get`` of the given keys from memory (each once), the rest from ``inner``."""

    def __init__(self, inner: Backend, found: dict[str, bytes]) -> None:
        super().__init__(inner)
        self._found = found

    def get(self, key: str) -> bytes:
        data = self._found.pop(key, None)
        return self._inner.get(key) if data is None else data

    def keys(self) -> Iterator[str]:
        return iter(list(self._found))
